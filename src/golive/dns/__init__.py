"""DNS through the Linode API: switch records between the old and new servers, verify that every
authoritative nameserver answers the new target, and put the records back exactly."""
