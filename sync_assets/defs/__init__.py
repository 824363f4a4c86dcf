"""The routes of this project, one folder each: ``<route>/defs.yaml`` (a ``RouteComponent``).

Loaded by ``sync_assets.project.load_project`` (each file on its own, so one bad file keeps only its
route out). ``dg scaffold defs sync_assets.components.RouteComponent <route>`` adds one.
"""
