"""Pure certificate code: parsing (X.509, SAML metadata), health assessment and trust diagnosis.

Nothing in this package talks to Webex or Graph; only ``sources.fetch_url`` reaches the network,
and only when it is called explicitly.
"""
