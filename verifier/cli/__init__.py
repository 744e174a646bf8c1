"""The command line: argparse only, one module per subcommand."""
