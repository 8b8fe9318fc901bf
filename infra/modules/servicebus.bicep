// The Service Bus namespace and exactly the queues of shared/messaging/queues.py, with the app's
// identity granted Data Sender / Data Receiver on each queue it uses, never on the namespace.
// tests/infra checks this file against queues.py and against the code's sends and triggers.

@description('Namespace name (6-50 characters).')
param name string

param location string
param tags object = {}

@description('Principal id of the function app\'s user-assigned identity.')
param appPrincipalId string

var senderRoleId = '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39' // Azure Service Bus Data Sender
var receiverRoleId = '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0' // Azure Service Bus Data Receiver

// Sessions and duplicate detection cannot be changed once a queue exists: a change here means a
// new queue (drain, delete, re-provision). appSends / appReceives are what the app's code does.
var queues = [
  {
    name: 'order-events'
    requiresSession: true
    lockDuration: 'PT1M'
    maxDeliveryCount: 10
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'P2D'
    defaultMessageTimeToLive: 'P14D'
    deadLetteringOnMessageExpiration: true
    appSends: true
    appReceives: true
  }
  {
    name: 'dataverse-events'
    requiresSession: false
    lockDuration: 'PT1M'
    maxDeliveryCount: 10
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT10M'
    defaultMessageTimeToLive: 'P14D'
    deadLetteringOnMessageExpiration: true
    appSends: false
    appReceives: true
  }
  {
    name: 'order-parked'
    requiresSession: false
    lockDuration: 'PT1M'
    maxDeliveryCount: 100
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'P2D'
    defaultMessageTimeToLive: 'P60D'
    deadLetteringOnMessageExpiration: true
    appSends: true
    appReceives: false
  }
]

// Standard: sessions, duplicate detection and 256 KB messages are all the code needs. No
// authorization rules are declared and local (SAS) auth is off: Entra ID only.
resource namespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = [for q in queues: {
  parent: namespace
  name: q.name
  properties: {
    requiresSession: q.requiresSession
    lockDuration: q.lockDuration
    maxDeliveryCount: q.maxDeliveryCount
    requiresDuplicateDetection: q.requiresDuplicateDetection
    duplicateDetectionHistoryTimeWindow: q.duplicateDetectionHistoryTimeWindow
    defaultMessageTimeToLive: q.defaultMessageTimeToLive
    deadLetteringOnMessageExpiration: q.deadLetteringOnMessageExpiration
    enablePartitioning: false
    enableBatchedOperations: true
  }
}]

// `if(` without a space: pycep-parser 0.7 (the structural tests) rejects `if (` after an indexed
// for; Bicep accepts both.
resource senders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (q, i) in queues: if(q.appSends) {
  name: guid(queue[i].id, appPrincipalId, senderRoleId)
  scope: queue[i]
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', senderRoleId)
  }
}]

resource receivers 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (q, i) in queues: if(q.appReceives) {
  name: guid(queue[i].id, appPrincipalId, receiverRoleId)
  scope: queue[i]
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', receiverRoleId)
  }
}]

output name string = namespace.name
output resourceId string = namespace.id
@description('The namespace host name, as ServiceBusConnection__fullyQualifiedNamespace wants it.')
output fullyQualifiedNamespace string = split(split(namespace.properties.serviceBusEndpoint, '//')[1], ':')[0]
