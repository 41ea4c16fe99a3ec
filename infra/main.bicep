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

// --- outputs (names only: no keys, no connection strings) -----------------------------------

output functionAppName string = functionApp.name
output functionAppHostName string = functionApp.properties.defaultHostName
output storageAccountName string = storage.name
output landingContainerName string = landingContainer.name
output reingestQueueName string = reingestQueue.name
output systemTopicName string = systemTopic.name
output deadLetterContainerName string = deadLetterContainer.name
output appInsightsName string = appInsights.name
