"""monitors component: `tollgate monitor` scrapes servers, stores their history, evaluates alert rules and
notifies Slack or a webhook.

Start at cli.py (the flags), then monitor.py (the loop: scrape, store, evaluate, notify).
Alert rules: rules.py parses the rules file, rule.py evaluates one rule, alerting.py tracks alert states.
Delivery: notify.py queues and retries, slack.py and webhook.py render the alert model of alert.py.
Storage: store.py and outbox.py. Metrics: scrape.py parses, derive.py and figures.py compute.
docs/design/architecture.md ("Inside monitors") lists every module in import order.
"""
