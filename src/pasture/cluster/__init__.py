"""Pasture on a Ray cluster (PASTURE_CLUSTER): one front end, runners on many nodes.

Ray Core provides membership, placement of actors on nodes and failure detection; Pasture
adds a small actor per node (`agent`) that reports the node's memory and devices and owns
its runner processes, and a planner (`planner`) that chooses a node for each model. Tokens
never pass through Ray: the front end streams from the runner's port (`remote`).
Nothing here is imported unless the server runs in cluster mode (docs/cluster.md).
"""
