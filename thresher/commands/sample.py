"""thresher sample (being built)."""

HELP = "sample (being built)"


def add_arguments(parser):
    pass


def run(args):
    from thresher.errors import UserError

    raise UserError("'sample' is not built yet")
