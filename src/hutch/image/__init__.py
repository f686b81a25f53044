"""The image layer: content store (store.py), image records and tags (db.py), registry client (registry.py),
layer unpacking (layers.py) and overlay snapshots (snapshot.py).

Imports point down only: image/ uses oci/ and linux/, never runtime/ or engine/.
"""
