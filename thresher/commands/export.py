"""thresher export (being built)."""

HELP = "export (being built)"


def add_arguments(parser):
    pass


def run(args):
    from thresher.errors import UserError

    raise UserError("'export' is not built yet")
