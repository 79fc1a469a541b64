"""The local Microsoft Graph: a loopback server the real msgraph-sdk talks to, over an in-memory Entra tenant.

Run it standalone with ``python -m fakes.graph`` (see ``fakes/graph/__main__.py``).
"""

from fakes.graph.certificates import (
    make_self_signed_certificate,
    pooled_rsa_key,
    render_federation_metadata,
    sha1_thumbprint,
)
from fakes.graph.local import LocalGraph
from fakes.graph.tenant import selects_key_credentials

__all__ = ["LocalGraph", "make_self_signed_certificate", "pooled_rsa_key", "render_federation_metadata",
           "selects_key_credentials", "sha1_thumbprint"]
