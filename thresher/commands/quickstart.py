"""thresher quickstart (being built)."""

HELP = "quickstart (being built)"


def add_arguments(parser):
    pass


def run(args):
    from thresher.errors import UserError

    raise UserError("'quickstart' is not built yet")
