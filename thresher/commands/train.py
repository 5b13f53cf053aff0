"""thresher train (being built)."""

HELP = "train (being built)"


def add_arguments(parser):
    pass


def run(args):
    from thresher.errors import UserError

    raise UserError("'train' is not built yet")
