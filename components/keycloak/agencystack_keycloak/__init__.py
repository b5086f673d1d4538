"""Keycloak for AgencyStack: a component plugin written against agencystack's public API only."""
