// Log alerts over the app's telemetry in Application Insights (classic `traces`/`requests`
// schema, scoped to the component). What the code logs (shared/observability/logs.py, engine/lifecycle.py,
// engine/poison.py, engine/sweep.py):
// - every JobOutcome event: "outcome <status> emitted" with customDimensions jobId, jobType,
//   correlationId, attempt, outcome, outcomeCode and a deterministic eventId (re-sends repeat it,
//   so the queries count distinct eventIds);
// - maintenance: "re-enqueued a stranded Queued job" per stranded job it re-sends;
// - the poison function (`poison_job`, triggered by <JOBS_QUEUE>-poison) runs once per message
//   arriving on the poison queue, and logs "poison message could not be settled now" when it
//   could not finish (storage down; maintenance retries the job).
// The poison-queue alert is log-based on purpose: the Storage QueueMessageCount metric is
// account-wide (all queues together) and hourly, and the poison function drains the queue within
// seconds, so its depth would stay near zero while messages keep arriving. Arrivals are the signal.

@description('Prefix of the alert rule names.')
param namePrefix string

@description('Azure region.')
param location string

@description('Tags for the rules.')
param tags object = {}

@description('Application Insights component resource id (the rules\' scope).')
param applicationInsightsId string

@description('Action group resource id notified by every rule. Empty: the rules fire without actions (visible in Azure Monitor alerts).')
param actionGroupId string = ''

@minValue(1)
@maxValue(100)
@description('Failure ratio alert: fire when Failed+Poisoned outcomes exceed this percentage of all outcomes in the window.')
param failureRatioThresholdPercent int = 10

@minValue(1)
@description('Failure ratio alert: evaluate only windows with at least this many outcomes (1 failure in 2 jobs is not an incident).')
param failureRatioMinOutcomes int = 20

@minValue(0)
@description('Stranded-jobs alert: fire when maintenance re-enqueues more stranded Queued jobs than this in the window.')
param strandedThreshold int = 0

var actions = {
  actionGroups: empty(actionGroupId) ? [] : [
    actionGroupId
  ]
}

var poisonedQuery = '''
traces
| where isnotempty(customDimensions.eventId)
| where tostring(customDimensions.outcome) == "Poisoned"
| extend jobType = tostring(customDimensions.jobType), eventId = tostring(customDimensions.eventId)
| summarize poisoned = dcount(eventId) by jobType
'''

var failureRatioQuery = '''
traces
| where isnotempty(customDimensions.eventId)
| extend eventId = tostring(customDimensions.eventId), outcome = tostring(customDimensions.outcome)
| summarize arg_max(timestamp, outcome) by eventId
| summarize total = count(), failed = countif(outcome in ("Failed", "Poisoned"))
| where total >= __MIN_OUTCOMES__
| project failurePercent = round(100.0 * failed / total, 1)
'''

// Records forwarded by the host carry no customDimensions: counting distinct jobIds counts each
// stranded job once, whichever way its record arrived.
var strandedQuery = '''
traces
| where message has "re-enqueued a stranded Queued job"
| where isnotempty(customDimensions.jobId)
| summarize stranded = dcount(tostring(customDimensions.jobId))
'''

var poisonQueueQuery = '''
union
    (requests | where name == "poison_job" | project timestamp, signal = "delivery"),
    (traces | where message has "poison message could not be settled" | project timestamp, signal = "unsettled")
| summarize poisonMessages = count()
'''

resource poisonedAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-job-poisoned'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Jobs: a job ended Poisoned'
    description: 'A JobOutcome with outcome Poisoned was emitted: a job used every attempt, or its message failed every delivery. Runbook: docs/operations.md (Re-drive a Poisoned job).'
    severity: 2
    enabled: true
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    scopes: [
      applicationInsightsId
    ]
    criteria: {
      allOf: [
        {
          query: poisonedQuery
          timeAggregation: 'Total'
          metricMeasureColumn: 'poisoned'
          dimensions: [
            {
              name: 'jobType'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: actions
  }
}

resource failureRatioAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-failure-ratio'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Jobs: failure ratio above ${failureRatioThresholdPercent}%'
    description: 'Failed+Poisoned outcomes are more than ${failureRatioThresholdPercent}% of all outcomes in the last hour (windows with at least ${failureRatioMinOutcomes} outcomes). Runbook: docs/operations.md.'
    severity: 1
    enabled: true
    evaluationFrequency: 'PT15M'
    windowSize: 'PT1H'
    scopes: [
      applicationInsightsId
    ]
    criteria: {
      allOf: [
        {
          query: replace(failureRatioQuery, '__MIN_OUTCOMES__', string(failureRatioMinOutcomes))
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'failurePercent'
          operator: 'GreaterThan'
          threshold: failureRatioThresholdPercent
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: actions
  }
}

resource strandedAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-stranded-queued'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Jobs: stranded Queued jobs re-enqueued'
    description: 'Maintenance re-sent the message of Queued jobs whose message should have been visible long ago (a crash between the status write and the send, or lost messages). Runbook: docs/operations.md.'
    severity: 2
    enabled: true
    evaluationFrequency: 'PT15M'
    windowSize: 'PT30M'
    scopes: [
      applicationInsightsId
    ]
    criteria: {
      allOf: [
        {
          query: strandedQuery
          timeAggregation: 'Total'
          metricMeasureColumn: 'stranded'
          operator: 'GreaterThan'
          threshold: strandedThreshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: actions
  }
}

resource poisonQueueAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-poison-queue'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Jobs: messages arrived on the poison queue'
    description: 'The poison_job function ran (a message reached the -poison queue) or could not settle a poison message. Runbook: docs/operations.md (Drain and inspect the poison queue).'
    severity: 2
    enabled: true
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    scopes: [
      applicationInsightsId
    ]
    criteria: {
      allOf: [
        {
          query: poisonQueueQuery
          timeAggregation: 'Total'
          metricMeasureColumn: 'poisonMessages'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: actions
  }
}

output ruleIds array = [
  poisonedAlert.id
  failureRatioAlert.id
  strandedAlert.id
  poisonQueueAlert.id
]
