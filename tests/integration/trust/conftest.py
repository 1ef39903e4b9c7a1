from collections.abc import AsyncIterator

import pytest

from contracts.topics import TopicCatalogue
from services.admin.acls import apply_acls, load_roles, trust_model_acls
from services.admin.topics import delete_topics, ensure_topics
from tests.secured_kafka import ACL_FILE, SecuredKafka


@pytest.fixture
async def acl_catalogue(
    secured_kafka: SecuredKafka, unique_suffix: str
) -> AsyncIterator[TopicCatalogue]:
    """The catalogue's topics under a prefix of the test's own, with the trust model's ACLs."""
    catalogue = TopicCatalogue(prefix=f"trust-{unique_suffix}.", partitions=2)
    admin = secured_kafka.settings("admin")
    await ensure_topics(secured_kafka.bootstrap_servers, catalogue.specs(), security=admin)
    bindings = trust_model_acls(catalogue, load_roles(ACL_FILE))
    await apply_acls(secured_kafka.bootstrap_servers, bindings, security=admin)
    yield catalogue
    await delete_topics(
        secured_kafka.bootstrap_servers, [s.name for s in catalogue.specs()], security=admin
    )
