"""HTTP API of the registry: units, volunteers and memberships, the collective-registration forms (JSON, Chinese
summaries, problem details); each route calls one use case."""
