"""The machinery every experiment runs on, knowing no experiment by name: the `Experiment` protocol,
claims and the `Registry` it is handed (`experiment`), the cell cache (`cells`), where cells run
(`runner`: in-process or on Dask), the main job (`reproduce`) and the report (`report`)."""
