"""The image layer: content store (store.py, writes in ingest.py), image records and tags (db.py, writes in
dbwrite.py), registry client (registry.py), layer unpacking (layers.py), overlay snapshots (snapshot.py); the
storage as a whole (storage.py, with rmi and prune in removal.py and inspect in inspection.py), and pull
(pull.py) and push (push.py) between a registry and the storage. What `run` needs stays apart from the rest.

Imports point down only: image/ uses oci/ and linux/, never runtime/ or engine/.
"""
