"""thresher report (being built)."""

HELP = "report (being built)"


def add_arguments(parser):
    pass


def run(args):
    from thresher.errors import UserError

    raise UserError("'report' is not built yet")
