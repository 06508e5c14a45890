"""Example DeepRacer reward functions, shipped with racer: `racer reward examples` lists them, and
`--reward NAME` (e.g. `racer train --reward center_and_progress`) uses one by name.  Each file is a
plain DeepRacer reward file: copy one and make it yours."""
