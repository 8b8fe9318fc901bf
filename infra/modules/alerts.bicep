// Azure Monitor alerts for the connector's failure modes, all to one action group:
// - dead-lettered messages on any queue (Service Bus metric);
// - parked orders waiting for an operator on order-parked (Service Bus metric);
// - failed function executions (Application Insights requests);
// - the webhook ingress answering 5xx above a rate (requests of bigcommerce_webhook);
// - reconciliation: coverage below 100% sweep after sweep, the oldest unsynced change too old,
//   failed sweeps, and no sweep at all (the structured events of shared/reconciliation/metrics.py);
// - webhook health: a hook found deactivated, missing or wrong, or left unhealthy
//   (the `webhook_health` event of shared/reconciliation/webhook_health.py).
// The worker's log records reach Application Insights as `traces` whose message is the JSON line
// of shared/observability/json_logging.py, hence parse_json(message).

param namePrefix string
param location string
param tags object = {}

param actionGroupId string
param serviceBusNamespaceId string
param appInsightsId string

@description('Alert when the ingress answers 5xx to more than this percentage of webhooks in 15 minutes.')
@minValue(1)
@maxValue(100)
param ingressFailurePercent int = 5

@description('Alert when a sweep reports a change out of sync for longer than this.')
@minValue(300)
param oldestUnsyncedSeconds int = 3600

@description('Alert when no reconciliation sweep was logged for this long (ISO 8601; at least a few RECONCILE_SCHEDULE periods).')
param reconcileSilenceWindow string = 'PT1H'

// Multi-line strings take no interpolation: the queries name the functions literally.

resource deadLetters 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-dead-letters'
  location: 'global'
  tags: tags
  properties: {
    description: 'Messages were dead-lettered (the EntityName dimension names the queue). Inspect them with `python -m cli queues peek-dlq <queue>`, fix the cause, then `python -m cli queues replay <queue> --all` (or `python -m cli queues replay <queue> --sequence <n>` for chosen ones).'
    severity: 1
    enabled: true
    scopes: [
      serviceBusNamespaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'DeadletteredMessages'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          metricName: 'DeadletteredMessages'
          dimensions: [
            {
              name: 'EntityName'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Maximum'
          skipMetricValidation: true
        }
      ]
    }
    actions: [
      {
        actionGroupId: actionGroupId
      }
    ]
  }
}

resource parkedOrders 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-parked-orders'
  location: 'global'
  tags: tags
  properties: {
    description: 'Orders are parked (a hold, a mapping error, a rejected write). See `python -m cli orders parked`, fix the cause, then `python -m cli orders replay --order <hash>:<id>` (or `python -m cli orders replay --all`).'
    severity: 3
    enabled: true
    scopes: [
      serviceBusNamespaceId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT30M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'ParkedOrders'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          metricName: 'ActiveMessages'
          dimensions: [
            {
              name: 'EntityName'
              operator: 'Include'
              values: [
                'order-parked'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Maximum'
          skipMetricValidation: true
        }
      ]
    }
    actions: [
      {
        actionGroupId: actionGroupId
      }
    ]
  }
}

resource failedExecutions 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-failed-executions'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Function executions failed'
    description: 'A function invocation failed (an exception, or a 5xx answer). 4xx answers to bad webhooks are not failures.'
    severity: 2
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: '''
requests
| where success == false
| extend code = toint(resultCode)
| where isnull(code) or code < 400 or code >= 500
| project timestamp, operation_Name, resultCode
'''
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroupId
      ]
    }
  }
}

resource ingressErrors 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-ingress-5xx'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Webhook ingress answers 5xx'
    description: 'The webhook endpoint answered 5xx to more than ${ingressFailurePercent}% of deliveries; BigCommerce retries, then deactivates the hook after about 48 hours.'
    severity: 1
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: '''
requests
| where operation_Name == "bigcommerce_webhook"
| summarize total = count(), failed = countif(toint(resultCode) >= 500)
| where total > 0
| extend failedPercent = 100.0 * failed / total
'''
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'failedPercent'
          operator: 'GreaterThan'
          threshold: ingressFailurePercent
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroupId
      ]
    }
  }
}

resource reconcileCoverage 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-reconcile-coverage'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Reconciliation coverage below 100%'
    description: 'Every reconciliation sweep of a store in 30 minutes found orders missing or stale in Dataverse: repairs are not landing. See `python -m cli reconcile`.'
    severity: 2
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT30M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: '''
traces
| extend m = parse_json(message)
| where tostring(m.customMetric) == "reconcile.coverage"
| summarize best = max(todouble(m.value)), sweeps = count() by store = tostring(m.store)
| where sweeps >= 2 and best < 1
'''
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroupId
      ]
    }
  }
}

resource oldestUnsynced 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-oldest-unsynced'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'An order has been out of sync too long'
    description: 'A reconciliation sweep found a change out of sync for more than ${oldestUnsyncedSeconds} seconds. See `python -m cli reconcile` and `python -m cli orders parked`.'
    severity: 2
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT30M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: '''
traces
| extend m = parse_json(message)
| where tostring(m.customMetric) == "reconcile.oldest_unsynced_seconds"
| summarize oldest = max(todouble(m.value)) by store = tostring(m.store)
'''
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'oldest'
          dimensions: [
            {
              name: 'store'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: oldestUnsyncedSeconds
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroupId
      ]
    }
  }
}

resource reconcileFailed 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-reconcile-failed'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Reconciliation sweeps fail'
    description: 'A reconciliation sweep ended with outcome failed (BigCommerce, Dataverse or the state store unreachable).'
    severity: 2
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT30M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: '''
traces
| extend m = parse_json(message)
| where tostring(m.metric) == "reconcile.sweep" and tostring(m.outcome) == "failed"
'''
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroupId
      ]
    }
  }
}

resource reconcileSilent 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-reconcile-silent'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'No reconciliation sweep'
    description: 'No reconciliation sweep was logged in ${reconcileSilenceWindow}: the reconcile timer is not running (app stopped, failing at start-up, or a bad RECONCILE_SCHEDULE).'
    severity: 1
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: reconcileSilenceWindow
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: '''
traces
| extend m = parse_json(message)
| where tostring(m.metric) == "reconcile.sweep"
'''
          timeAggregation: 'Count'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroupId
      ]
    }
  }
}

resource hookDeactivated 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-hook-deactivated'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'BigCommerce webhook deactivated or unhealthy'
    description: 'A webhook check found a hook deactivated, missing or wrong (and repaired it, rewinding the sweep), or left a store unhealthy. See `python -m cli webhooks status --store <hash>`.'
    severity: 2
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: '''
traces
| extend m = parse_json(message)
| where tostring(m.event) == "webhook_health" and tobool(m.dry_run) == false
| where tobool(m.healthy) == false or toint(m.hooks_repaired) > 0 or toint(m.hooks_created) > 0
| project timestamp, store_hash = tostring(m.store_hash), message
'''
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroupId
      ]
    }
  }
}
