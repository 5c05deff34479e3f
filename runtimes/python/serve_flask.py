"""Placeholder: serving flask apps is being written."""


def serve(args, kit):
    raise kit.LaunchError("flask is not supported yet", 2)
