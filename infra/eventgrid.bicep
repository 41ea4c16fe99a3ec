// retail-ingest, step 2 of 2: route eot_*.txt uploads in the landing container to IngestFunction.
//
// Deploy AFTER the code is on the app (main.bicep, then the zip, then this): Event Grid validates
// a webhook when the subscription is created, and only the running blobs extension of a loaded
// IngestFunction (`"source": "EventGrid"`) answers that handshake. deploy.yml runs this after
// every code deployment; it is idempotent.
//
//   az deployment group create -g rg-retail-ingest-dev -f infra/eventgrid.bicep \
//     -p functionAppName=<app> systemTopicName=<topic> storageAccountName=<account> \
//        landingContainerName=landing

targetScope = 'resourceGroup'

@description('The function app created by main.bicep (output functionAppName).')
param functionAppName string

@description('The Event Grid system topic created by main.bicep (output systemTopicName).')
param systemTopicName string

@description('The storage account created by main.bicep (output storageAccountName): the dead-letter destination.')
param storageAccountName string

@description('The landing container (INGEST_CONTAINER).')
param landingContainerName string = 'landing'

@description('The blob-triggered function Event Grid delivers to (its folder name).')
param ingestFunctionName string = 'IngestFunction'

@description('Container for events that could not be delivered after every retry.')
param deadLetterContainerName string = 'eventgrid-deadletter'

@description('How long Event Grid keeps retrying one event, in minutes (max 1440).')
@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int = 1440

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: systemTopicName
}

// The blobs extension's system key, read at deployment time: never in source, never an output.
// It only exists once the host has started with a blob trigger loaded (hence step 2).
resource functionHost 'Microsoft.Web/sites/host@2022-09-01' existing = {
  parent: functionApp
  name: 'default'
}

var blobsExtensionKey = functionHost.listKeys().systemKeys.blobs_extension

var webhookUrl = 'https://${functionApp.properties.defaultHostName}/runtime/webhooks/blobs?functionName=Host.Functions.${ingestFunctionName}&code=${blobsExtensionKey}'

resource eotSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: systemTopic
  name: 'eot-to-${toLower(ingestFunctionName)}'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: webhookUrl
        // One marker per delivery: each is one date's run.
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      // Only the end-of-transmission markers: eot_{date}.txt in the landing container.
      subjectBeginsWith: '/blobServices/default/containers/${landingContainerName}/blobs/eot_'
      subjectEndsWith: '.txt'
      isSubjectCaseSensitive: true
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storage.id
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output eventSubscriptionName string = eotSubscription.name
