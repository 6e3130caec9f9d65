"""Raksha on many machines (`raksha run --cluster ADDRESS`, the `raksha[cluster]` extra).

One *camera host* per node runs the cameras the coordinator gives it, with the same
per-camera pipelines, incident sink and batching as `raksha run` in one process
(`host.CameraHost`). The coordinator (`coordinator.Coordinator`, in the `raksha run` process)
places cameras on hosts by the capacity their nodes declare (`placement.place`), watches the
hosts and, when a node or its host dies, places that node's cameras on the others. Every host
stores into the one shared store (PostgreSQL); the outbox dispatcher and the timers run once,
in the coordinator's process.

Only this package imports ray (an import-linter contract), and only `ray_hosts` and
`coordinator` at that; `placement` and `host` are plain Python, tested without it.
"""
