"""One module per `thresher` subcommand: HELP, add_arguments(parser), run(args) -> int."""
