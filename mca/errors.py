"""The shell's error hierarchy. Foreign errors (psycopg, subprocess) are translated here."""

from __future__ import annotations


class MCAError(Exception):
    """Base of every error mca raises on purpose; the CLI prints these as one line."""

    exit_code = 1


class ConfigError(MCAError):
    """Settings or a config file are wrong."""


class SettingsInvalid(ConfigError):
    """An environment setting does not parse: a usage error, so the CLI exits 2 (as for a bad option)."""

    exit_code = 2


class DatabaseUnreachable(MCAError):
    """A store URL could not be reached or spoke an engine we do not know."""


class EmbeddedServerError(MCAError):
    """The embedded PostgreSQL could not be started, stopped or inspected."""


class MigrationError(MCAError):
    """A migration failed or an applied migration file changed."""


class InputError(MCAError):
    """Bad input from a user file or argument: names where (row, field) and why."""
