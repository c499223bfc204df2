"""The stores of the DB context, one module per kind of object (see ``common``)."""
