"""The machinery every experiment runs on: the `Experiment` protocol and claims (`experiment`),
the registry, the cell cache (`cells`) and where cells run (`runner`: in-process or on Dask),
the main job (`reproduce`), the report, and the figure style."""
