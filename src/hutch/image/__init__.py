"""The image layer: content store (store.py), image records and tags (db.py), registry client (registry.py),
layer unpacking (layers.py), overlay snapshots (snapshot.py); the storage as a whole with rmi, tag and prune
(storage.py), and pull (pull.py) and push (push.py) between a registry and the storage.

Imports point down only: image/ uses oci/ and linux/, never runtime/ or engine/.
"""
