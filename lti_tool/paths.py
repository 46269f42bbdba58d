"""Where the project's own files live, found from the package rather than the working directory."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "config"
DEFAULT_CONFIG_FILE = CONFIG_DIR / "default.toml"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
