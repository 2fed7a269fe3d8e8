"""Where alert receivers' URLs come from when no flag gives them.

`tollgate monitor` reads these variables; `tollgate drift watch` (deprecated alert flags) and
`tollgate demo` pass or withhold them when they start a monitor. Environment variables, unlike
flags, do not show in `ps`, which matters for Slack webhook URLs: they are credentials.
"""

SLACK_ENV = "TOLLGATE_SLACK_WEBHOOK"
WEBHOOK_ENV = "TOLLGATE_WEBHOOK_URL"
RECEIVER_ENVS = (SLACK_ENV, WEBHOOK_ENV)
