"""thresher eval (being built)."""

HELP = "eval (being built)"


def add_arguments(parser):
    pass


def run(args):
    from thresher.errors import UserError

    raise UserError("'eval' is not built yet")
