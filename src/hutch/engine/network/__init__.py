"""Container networks on CNI: the plugin driver (cni), network definitions as conflists (config), a named
network namespace per container (netns), setup and teardown around the runtime (setup), published ports
(ports), the files /etc/hosts and /etc/resolv.conf (etcfiles) and name resolution through aardvark-dns (dns).
"""
