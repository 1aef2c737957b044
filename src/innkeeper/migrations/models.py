"""Every table, imported so Alembic sees the whole metadata."""

from innkeeper.batch import models as batch_models
from innkeeper.connections import models as connections_models
from innkeeper.core import audit, jobs
from innkeeper.core.db import Base
from innkeeper.guests import models as guests_models
from innkeeper.orders import models as orders_models
from innkeeper.personalize.experiences import models as personalize_models
from innkeeper.sessions import models as sessions_models
from innkeeper.tenant import models as tenant_models
from innkeeper.triggers import models as triggers_models
from innkeeper.users import models as users_models

__all__ = [
    "Base",
    "audit",
    "batch_models",
    "connections_models",
    "guests_models",
    "jobs",
    "orders_models",
    "personalize_models",
    "sessions_models",
    "tenant_models",
    "triggers_models",
    "users_models",
]
