"""The root of canary's exception tree.

Every exception canary raises on purpose derives from :class:`CanaryError`, so a caller
can catch everything canary-specific with one clause::

    CanaryError
    ├── ConfigError                           bad settings or flags
    ├── canary.kube.KubeError                 anything from the Kubernetes API
    │   ├── canary.controller.user_route.RouteContended  a user's route kept changing
    │   │                                     under canary's writes
    │   ├── TransportError                    the API server could not be reached
    │   ├── NotLeader                         a write refused: the leader Lease may be
    │   │                                     another replica's
    │   ├── WatchListRefused                  the API server serves no watch-list: list
    │   │                                     in pages
    │   └── ApiError                          the API server answered with an error status
    │       ├── Unauthorized (401), Forbidden (403), NotFound (404),
    │       ├── Conflict (409), Gone (410), Invalid (422),
    │       └── TooManyRequests (429), ServerError (5xx)
    ├── canary.metrics.prometheus.QueryFailed    a Prometheus query failed or timed out
    │   └── MetricsUnavailable                Prometheus could not answer (refused,
    │                                         timed out, 5xx, 429): an outage
    ├── canary.metrics.promql.PromqlSyntaxError  a query is not PromQL (also a ValueError)
    ├── canary.metrics.regex.SlotError        no value is safe where a placeholder sits
    │                                         in a regex (also a ValueError)
    ├── canary.notify.NotifyError             an alert could not be sent
    │   ├── ProviderUnavailable               the AlertProvider is missing or invalid
    │   └── AddressUnavailable                its Secret or address is missing or invalid
    ├── canary.targets.deployment.UnsupportedTarget   the target cannot be delivered as is
    ├── canary.router.UnsupportedProvider     spec.provider names no router canary has
    ├── canary.router.kubernetes.InexpressibleRoute   a route Services alone cannot carry
    ├── canary.controller.executor.OwnedElsewhere     the object belongs to another Canary
    ├── canary.router.gatewayapi.matches.UnsupportedRoute  the Gateway API cannot express
    │                                         part of the routing
    ├── canary.webhooks.SecretHeaderError     a Secret cannot be sent as webhook headers
    │                                         (also a ValueError)
    ├── canary.outbound.TimedOut              a gate's or alert receiver's answer was not
    │                                         in within its timeout (also a TimeoutError)
    ├── canary.loadtester.tasks.Refused       the load tester does not run a hook
    └── canary.devenv.DevenvError             the local environment
        ├── NotInstalled                      a binary is missing: run `canary devenv install`
        ├── InstallFailed                     a build or download step failed
        └── ComponentFailed                   a component did not start; names it, shows its log

tests/unit/test_errors.py checks this drawing against the classes.
"""


class CanaryError(Exception):
    """Base class of every error canary raises deliberately."""


class ConfigError(CanaryError):
    """A setting, flag or input file is invalid; the message names it."""
