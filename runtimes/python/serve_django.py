"""Placeholder: serving django apps is being written."""


def serve(args, kit):
    raise kit.LaunchError("django is not supported yet", 2)
