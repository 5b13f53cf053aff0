"""thresher judge (being built)."""

HELP = "judge (being built)"


def add_arguments(parser):
    pass


def run(args):
    from thresher.errors import UserError

    raise UserError("'judge' is not built yet")
