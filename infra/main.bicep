// retail-ingest: everything one environment (dev, staging or prod) needs, in one resource group.
//
// Step 1 of 2. Deploy this, then deploy the code (the zip), then `eventgrid.bicep` (step 2):
// the Event Grid subscription's webhook is validated against the running IngestFunction, so it
// cannot be created before the code is there. See infra/README.md.
//
//   az deployment group create -g rg-retail-ingest-dev \
//     -f infra/main.bicep -p @infra/params/dev.json

targetScope = 'resourceGroup'

@description('Environment name: used in resource names and tags.')
@allowed([
  'dev'
  'staging'
  'prod'
])
param envName string

@description('Azure region. Must be one where Flex Consumption is offered.')
param location string = resourceGroup().location

@description('Base name for the resources: lowercase letters, digits and dashes.')
@minLength(3)
@maxLength(20)
param baseName string = 'retail-ingest'

@description('Blob container the retailer drops its CSV files and eot_{date}.txt markers into (INGEST_CONTAINER).')
@minLength(3)
@maxLength(63)
param landingContainerName string = 'landing'

@description('Queue ReingestFunction writes to and IngestDateFunction reads (its poison queue is created by the host).')
param reingestQueueName string = 'reingest-dates'

@description('Flex Consumption: the most instances the app may scale out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Flex Consumption instance size in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Replication of the storage account (e.g. Standard_ZRS for prod where the region offers it).')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSku string = 'Standard_LRS'

@description('Days Log Analytics keeps the logs.')
@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

@description('Tags added to every resource.')
param tags object = {}

@description('When SweepFunction runs (INGEST_SWEEP_SCHEDULE): NCRONTAB with seconds, UTC.')
param sweepSchedule string = '0 */15 * * * *'

@description('Dates the sweep decides (INGEST_SWEEP_DAYS): today, in UTC, and the N-1 before it.')
@minValue(1)
@maxValue(3660)
param sweepDays int = 35

@description('Time of the next day, UTC HH:MM, by which the files and the marker of a date are due (INGEST_SWEEP_DEADLINE).')
param sweepDeadline string = '10:00'

@description('Past its deadline, ingest a date whose files landed without a marker (INGEST_SWEEP_INGEST_WITHOUT_MARKER).')
param sweepIngestWithoutMarker bool = false

@description('E-mail address the alerts are sent to. Empty: the alert rules are deployed without an action group (they show in the portal only). Give it at deployment time (-p alertEmail=...), not in params/*.json.')
param alertEmail string = ''

// --- names ---------------------------------------------------------------------------------

var token = toLower(uniqueString(subscription().id, resourceGroup().id, envName))
var allTags = union(tags, {
  app: baseName
  env: envName
})
// Storage account names: 3-24 lowercase letters and digits (2 + 10 + 4 + 8 at most).
var storageAccountName = toLower('st${take(replace(baseName, '-', ''), 10)}${take(envName, 4)}${take(token, 8)}')
var functionAppName = 'func-${baseName}-${envName}-${take(token, 6)}'
var planName = 'plan-${baseName}-${envName}'
var logAnalyticsName = 'log-${baseName}-${envName}'
var appInsightsName = 'appi-${baseName}-${envName}'
var systemTopicName = 'evgt-${baseName}-${envName}'
// Flex Consumption reads the deployed zip from this container.
var deploymentContainerName = 'app-package'
// Events Event Grid could not deliver after every retry (see eventgrid.bicep).
var deadLetterContainerName = 'eventgrid-deadletter'
var actionGroupName = 'ag-${baseName}-${envName}'
var alertNamePrefix = 'alert-${baseName}-${envName}'

// Built-in role definition ids.
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageAccountContributor: '17d1049b-9a84-46fb-8f53-869881c3d3ab'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

// --- storage -------------------------------------------------------------------------------

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageAccountName
  location: location
  tags: allTags
  kind: 'StorageV2'
  sku: {
    name: storageSku
  }
  properties: {
    accessTier: 'Hot'
    // Identity only: the app, the host and the deployment all use Microsoft Entra ID.
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource landingContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: landingContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource reingestQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: reingestQueueName
}

// --- monitoring ----------------------------------------------------------------------------

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: allTags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionInDays
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: allTags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    IngestionMode: 'LogAnalytics'
    // Only Microsoft Entra ID authenticated telemetry is accepted: the app sends it with its
    // identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING below).
    DisableLocalAuth: true
  }
}

// --- function app (Flex Consumption, custom handler) ----------------------------------------

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: allTags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  tags: allTags
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      // No account key anywhere: the host and the handler reach storage with the app's
      // system-assigned identity (roles below).
      appSettings: [
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storage.name
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'INGEST_CONTAINER'
          value: landingContainerName
        }
        {
          name: 'INGEST_STORE'
          value: 'azure://${landingContainerName}'
        }
        {
          name: 'INGEST_STORAGE_ACCOUNT'
          value: storage.name
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsights.properties.ConnectionString
        }
        {
          // System-assigned identity: no ClientId part.
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'Authorization=AAD'
        }
        {
          // SweepFunction's timer (%INGEST_SWEEP_SCHEDULE% in its function.json).
          name: 'INGEST_SWEEP_SCHEDULE'
          value: sweepSchedule
        }
        {
          name: 'INGEST_SWEEP_DAYS'
          value: string(sweepDays)
        }
        {
          name: 'INGEST_SWEEP_DEADLINE'
          value: sweepDeadline
        }
        {
          // Spelled out: ARM's string(true) is 'True'.
          name: 'INGEST_SWEEP_INGEST_WITHOUT_MARKER'
          value: sweepIngestWithoutMarker ? 'true' : 'false'
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'custom'
        version: '1.0'
      }
    }
  }
  dependsOn: [
    deploymentContainer
  ]
}

// --- role assignments for the app's identity -------------------------------------------------

// Blobs: read the drops, write formatted/ and reports, blob-trigger receipts, the deployment zip.
resource appBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionApp.id, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Queues: the reingest queue (output binding and trigger) and the blob trigger's own queues.
resource appQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionApp.id, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// The blob trigger's host storage (functions-host-protocol.md section 6).
resource appAccountContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionApp.id, roles.storageAccountContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageAccountContributor)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Identity-based telemetry ingestion (DisableLocalAuth above).
resource appMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, functionApp.id, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// --- Event Grid system topic on the storage account -----------------------------------------
// Its subscription to IngestFunction is eventgrid.bicep (step 2, after the code).

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: systemTopicName
  location: location
  tags: allTags
  identity: {
    // Used to write undeliverable events to the dead-letter container.
    type: 'SystemAssigned'
  }
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

resource topicDeadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, systemTopic.id, roles.storageBlobDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: systemTopic.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// --- alerts ----------------------------------------------------------------------------------
// Log search alerts on the app's Application Insights (docs/operations.md, "Alerts", quotes each
// query verbatim; infra/check.py checks that it does). They are stateful: one e-mail when an
// alert fires, one when it resolves, none in between.

var alertsNotify = !empty(alertEmail)
// By id rather than symbol: the action group exists only when there is an address to mail.
var alertActionGroups = alertsNotify ? [
  resourceId('Microsoft.Insights/actionGroups', actionGroupName)
] : []

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (alertsNotify) {
  name: actionGroupName
  location: 'global'
  tags: allTags
  properties: {
    groupShortName: 'ri-${envName}'
    enabled: true
    emailReceivers: [
      {
        name: 'operators'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// The dates of the latest sweep that need a person, as one row: its `attention` dimension lists
// them ("2023-11-24 late, 2023-11-27 missing"), so each new set of dates is one e-mail.
var attentionQuery = '''
let sweep = traces
    | where tostring(customDimensions.Category) == "Function.SweepFunction.User"
    | extend invocation = tostring(customDimensions.InvocationId);
sweep
| where message startswith "sweep " and message endswith " need attention"
| summarize arg_max(timestamp, invocation)
| project invocation
| join kind=inner (sweep | where message startswith "needs attention: ") on invocation
| parse message with "needs attention: " day:string " " state:string ": " why:string
| extend label = strcat(day, " ", state, iff(why contains "file(s) quarantined: ", " (quarantined file)", ""))
| summarize dates = count(), attention = strcat_array(array_sort_asc(make_list(label)), ", ")
'''

// What the queue extension logs (Warning, category Microsoft.Azure.WebJobs.Host.Queues.QueueProcessor)
// when it gives up on a message, for reingest-dates and the blob trigger's queue alike.
var poisonQuery = '''
traces
| where message startswith "Message has reached MaxDequeueCount of "
| extend queue = extract(@"Moving message to queue '([^']+)'", 1, message)
| summarize messages = count() by queue
'''

// A 503 from the handler is a marker whose files have not all landed: the host retries it and
// the sweep takes over, so it is left out here.
var failuresQuery = '''
let waiting_for_files = exceptions
    | where innermostMessage contains "status code does not indicate success: 503"
    | project invocation = tostring(customDimensions.InvocationId)
    | where isnotempty(invocation);
requests
| where success == false
| where tostring(customDimensions.InvocationId) !in (waiting_for_files)
| summarize failures = count() by functionName = name
'''

// Every sweep writes one summary line; none for an hour means the safety net itself is down.
var sweepSilentQuery = '''
traces
| where tostring(customDimensions.Category) == "Function.SweepFunction.User"
| where message startswith "sweep " and message endswith " need attention"
'''

resource attentionAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${alertNamePrefix}-dates-need-attention'
  location: location
  tags: allTags
  kind: 'LogAlert'
  properties: {
    displayName: '${baseName} ${envName}: dates need a person'
    description: 'The latest sweep lists dates that need a person (late, awaiting_marker, missing, blocked, incomplete, or a quarantined file). The attention dimension names them; docs/operations.md says what to do for each state.'
    severity: 2
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT1H'
    criteria: {
      allOf: [
        {
          query: attentionQuery
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'dates'
          dimensions: [
            {
              name: 'attention'
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
    actions: {
      actionGroups: alertActionGroups
    }
  }
  dependsOn: [
    actionGroup
  ]
}

resource poisonAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${alertNamePrefix}-poison-messages'
  location: location
  tags: allTags
  kind: 'LogAlert'
  properties: {
    displayName: '${baseName} ${envName}: messages moved to a poison queue'
    description: 'The Functions host gave up on a message after its last try and moved it to the poison queue the queue dimension names (${reingestQueueName}-poison: a date run; webjobs-blobtrigger-poison: a marker). docs/operations.md says what to do.'
    severity: 2
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT1H'
    criteria: {
      allOf: [
        {
          query: poisonQuery
          timeAggregation: 'Total'
          metricMeasureColumn: 'messages'
          dimensions: [
            {
              name: 'queue'
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
    actions: {
      actionGroups: alertActionGroups
    }
  }
  dependsOn: [
    actionGroup
  ]
}

resource failuresAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${alertNamePrefix}-failed-invocations'
  location: location
  tags: allTags
  kind: 'LogAlert'
  properties: {
    displayName: '${baseName} ${envName}: failed invocations'
    description: 'Invocations of the function the functionName dimension names failed (storage, a busy date, a bug; markers still waiting for their files are left out). docs/operations.md says what to do.'
    severity: 1
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: failuresQuery
          timeAggregation: 'Total'
          metricMeasureColumn: 'failures'
          dimensions: [
            {
              name: 'functionName'
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
    actions: {
      actionGroups: alertActionGroups
    }
  }
  dependsOn: [
    actionGroup
  ]
}

resource sweepSilentAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${alertNamePrefix}-sweep-silent'
  location: location
  tags: allTags
  kind: 'LogAlert'
  properties: {
    displayName: '${baseName} ${envName}: the sweep has not run for an hour'
    description: 'No SweepFunction summary line for an hour: late files, lost markers and missing dates are not being looked at, and the dates-need-attention alert cannot fire. docs/operations.md says what to do.'
    severity: 1
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT1H'
    criteria: {
      allOf: [
        {
          query: sweepSilentQuery
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
    autoMitigate: true
    actions: {
      actionGroups: alertActionGroups
    }
  }
  dependsOn: [
    actionGroup
  ]
}

// --- outputs (names only: no keys, no connection strings) -----------------------------------

output functionAppName string = functionApp.name
output functionAppHostName string = functionApp.properties.defaultHostName
output storageAccountName string = storage.name
output landingContainerName string = landingContainer.name
output reingestQueueName string = reingestQueue.name
output systemTopicName string = systemTopic.name
output deadLetterContainerName string = deadLetterContainer.name
output appInsightsName string = appInsights.name
// False: no alertEmail was given, so the alerts mail nobody.
output alertsNotify bool = alertsNotify
