"""Values that are everywhere and mean nothing as indicators (after MISP's warning lists).

They are stored like any other sighting, so counts stay right, but never correlate. The TEST-NET
ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) and example.com are left
off on purpose: documentation, tests and the demo use them as the malicious values.
"""

import ipaddress

# Private, loopback, link-local, shared (CGNAT), multicast and unspecified addresses.
SPECIAL_NETWORKS = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "255.255.255.255/32",
    "::/128",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
]

PUBLIC_RESOLVERS = [
    # Google, Cloudflare, Quad9, OpenDNS.
    "8.8.8.8",
    "8.8.4.4",
    "1.1.1.1",
    "1.0.0.1",
    "9.9.9.9",
    "149.112.112.112",
    "208.67.222.222",
    "208.67.220.220",
    "2001:4860:4860::8888",
    "2001:4860:4860::8844",
    "2606:4700:4700::1111",
    "2606:4700:4700::1001",
    "2620:fe::fe",
    "2620:fe::9",
    "2620:119:35::35",
    "2620:119:53::53",
]

# The busiest domains seen in Japanese networks; a name matches itself and its "www." name only,
# since a subdomain (a storage bucket, a hosted page) can well be an attacker's.
TOP_DOMAINS = [
    "akamai.net",
    "akamaihd.net",
    "amazon.co.jp",
    "amazon.com",
    "amazonaws.com",
    "apple.com",
    "bing.com",
    "cloudflare.com",
    "cloudfront.net",
    "docomo.ne.jp",
    "doubleclick.net",
    "facebook.com",
    "fbcdn.net",
    "github.com",
    "google.co.jp",
    "google.com",
    "googleapis.com",
    "gstatic.com",
    "icloud.com",
    "instagram.com",
    "line.me",
    "linkedin.com",
    "live.com",
    "microsoft.com",
    "msftncsi.com",
    "nhk.or.jp",
    "office.com",
    "office365.com",
    "outlook.com",
    "rakuten.co.jp",
    "twitter.com",
    "wikipedia.org",
    "windows.com",
    "windowsupdate.com",
    "x.com",
    "yahoo.co.jp",
    "yahoo.com",
    "youtube.com",
]

WARNED_NETWORKS = [ipaddress.ip_network(network) for network in SPECIAL_NETWORKS + PUBLIC_RESOLVERS]
WARNED_DOMAINS = frozenset(TOP_DOMAINS) | frozenset(f"www.{domain}" for domain in TOP_DOMAINS)
