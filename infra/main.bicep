// The connector's Azure environment, for `azd up` (see infra/README.md): a resource group with
// the Flex Consumption function app, its one user-assigned identity, storage, Service Bus, Key
// Vault, Application Insights on Log Analytics, and the alerts. No keys or connection strings:
// every connection is Entra ID with that identity.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name (AZURE_ENV_NAME); names the resource group and seeds resource names.')
param environmentName string

@minLength(1)
@description('Azure region of every resource (AZURE_LOCATION); it must offer Flex Consumption.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('dev: scale to zero, short retention, vault purgeable. prod: one always-ready webhook instance, zone-redundant storage, 90-day logs, vault purge protection.')
@allowed([
  'dev'
  'prod'
])
param environmentType string = 'dev'

@description('Where alerts are e-mailed (ALERT_EMAIL).')
param alertEmail string

@description('The Dataverse environment URL, https://<org>.crm.dynamics.com (DATAVERSE_URL).')
param dataverseUrl string

@minLength(1)
@description('Comma-separated BigCommerce store hashes (BIGCOMMERCE_STORES).')
param bigcommerceStores string

@description('Webhook checks required of every store (BIGCOMMERCE_WEBHOOK_CHECKS): which secrets the operator sets.')
@allowed([
  'header'
  'signature'
  'header,signature'
])
param webhookChecks string = 'header'

@description('Principal id of the deploying user or service principal (AZURE_PRINCIPAL_ID); gets Key Vault Secrets Officer so it can set the secrets. Empty: none.')
param deployerPrincipalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param deployerPrincipalType string = 'User'

@description('Six-field NCRONTAB schedule of the Dataverse change poll (DATAVERSE_POLL_SCHEDULE).')
param dataversePollSchedule string = '*/30 * * * * *'

@description('Six-field NCRONTAB schedule of the reconciliation sweep (RECONCILE_SCHEDULE).')
param reconcileSchedule string = '0 */5 * * * *'

@description('Alert when a change stays out of sync longer than this many seconds.')
@minValue(300)
param oldestUnsyncedAlertSeconds int = 3600

var isProd = environmentType == 'prod'
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  'connector-environment-type': environmentType
}
var abbrs = {
  resourceGroup: 'rg-'
  identity: 'id-'
  plan: 'plan-'
  functionApp: 'func-'
  storage: 'st'
  serviceBus: 'sb-'
  keyVault: 'kv-'
  logAnalytics: 'log-'
  appInsights: 'appi-'
  actionGroup: 'ag-'
  alert: 'alert-'
}
var functionAppName = '${abbrs.functionApp}${resourceToken}'
var storageAccountName = '${abbrs.storage}${resourceToken}'
var keyVaultName = '${abbrs.keyVault}${resourceToken}'
var deploymentContainerName = 'app-package-${resourceToken}'
var stateTableName = 'connectorstate'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourceGroup}${environmentName}'
  location: location
  tags: tags
}

// The one identity of the app: storage, Service Bus, Key Vault references, Application
// Insights ingestion and Dataverse (as an application user) all use it.
module identity 'br/public:avm/res/managed-identity/user-assigned-identity:0.4.1' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.identity}${resourceToken}'
    location: location
    tags: tags
    enableTelemetry: false
  }
}

module logAnalytics 'br/public:avm/res/operational-insights/workspace:0.7.0' = {
  name: 'logAnalytics'
  scope: rg
  params: {
    name: '${abbrs.logAnalytics}${resourceToken}'
    location: location
    tags: tags
    dataRetention: isProd ? 90 : 30
    enableTelemetry: false
  }
}

module appInsights 'br/public:avm/res/insights/component:0.4.1' = {
  name: 'appInsights'
  scope: rg
  params: {
    name: '${abbrs.appInsights}${resourceToken}'
    location: location
    tags: tags
    workspaceResourceId: logAnalytics.outputs.resourceId
    disableLocalAuth: true
    enableTelemetry: false
  }
}

module storage 'br/public:avm/res/storage/storage-account:0.14.3' = {
  name: 'storage'
  scope: rg
  params: {
    name: storageAccountName
    location: location
    tags: tags
    skuName: isProd ? 'Standard_ZRS' : 'Standard_LRS'
    kind: 'StorageV2'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    supportsHttpsTrafficOnly: true
    minimumTlsVersion: 'TLS1_2'
    dnsEndpointType: 'Standard'
    // Flex Consumption without virtual network integration reaches storage over its public
    // endpoint, with Entra ID only (shared keys are off). infra/README.md: private endpoints.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    blobServices: {
      containers: [
        {
          name: deploymentContainerName
          publicAccess: 'None'
        }
      ]
    }
    tableServices: {
      tables: [
        {
          name: stateTableName
        }
      ]
    }
    enableTelemetry: false
  }
}

// RBAC mode; holds the BigCommerce secrets and the webhook function key, which the operator
// sets after `azd provision` (infra/README.md). Reachable publicly (with Entra ID) because Key
// Vault references from an app without virtual network integration need it.
module keyVault 'br/public:avm/res/key-vault/vault:0.13.3' = {
  name: 'keyVault'
  scope: rg
  params: {
    name: keyVaultName
    location: location
    tags: tags
    sku: 'standard'
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: isProd ? 90 : 7
    enablePurgeProtection: isProd
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    enableTelemetry: false
  }
}

module plan 'br/public:avm/res/web/serverfarm:0.1.1' = {
  name: 'plan'
  scope: rg
  params: {
    name: '${abbrs.plan}${resourceToken}'
    location: location
    tags: tags
    sku: {
      name: 'FC1'
      tier: 'FlexConsumption'
    }
    reserved: true
    enableTelemetry: false
  }
}

module serviceBus './modules/servicebus.bicep' = {
  name: 'serviceBus'
  scope: rg
  params: {
    name: '${abbrs.serviceBus}${resourceToken}'
    location: location
    tags: tags
    appPrincipalId: identity.outputs.principalId
  }
}

module roles './modules/roles.bicep' = {
  name: 'roles'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    appInsightsName: appInsights.outputs.name
    appPrincipalId: identity.outputs.principalId
    deployerPrincipalId: deployerPrincipalId
    deployerPrincipalType: deployerPrincipalType
  }
}

module functionApp './modules/function-app.bicep' = {
  name: 'functionApp'
  scope: rg
  params: {
    name: functionAppName
    location: location
    tags: tags
    planId: plan.outputs.resourceId
    identityId: identity.outputs.resourceId
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    appInsightsConnectionString: appInsights.outputs.connectionString
    serviceBusNamespace: serviceBus.outputs.fullyQualifiedNamespace
    keyVaultName: keyVault.outputs.name
    dataverseUrl: dataverseUrl
    bigcommerceStores: bigcommerceStores
    webhookChecks: webhookChecks
    stateTableName: stateTableName
    dataversePollSchedule: dataversePollSchedule
    reconcileSchedule: reconcileSchedule
    environmentName: environmentName
    maximumInstanceCount: isProd ? 100 : 40
    alwaysReadyHttpInstances: isProd ? 1 : 0
  }
  // The host reads storage, Service Bus and Key Vault as soon as it starts.
  dependsOn: [
    roles
    serviceBus
  ]
}

module actionGroup 'br/public:avm/res/insights/action-group:0.8.0' = {
  name: 'actionGroup'
  scope: rg
  params: {
    name: '${abbrs.actionGroup}${resourceToken}'
    location: 'global'
    tags: tags
    groupShortName: take('conn${resourceToken}', 12)
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
    enableTelemetry: false
  }
}

module alerts './modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    namePrefix: '${abbrs.alert}${resourceToken}'
    location: location
    tags: tags
    actionGroupId: actionGroup.outputs.resourceId
    serviceBusNamespaceId: serviceBus.outputs.resourceId
    appInsightsId: appInsights.outputs.resourceId
    oldestUnsyncedSeconds: oldestUnsyncedAlertSeconds
  }
}

// azd writes these into the environment (.azure/<env>/.env).
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output FUNCTION_URL string = functionApp.outputs.webhookUrl
output SERVICEBUS_NAMESPACE string = serviceBus.outputs.fullyQualifiedNamespace
output KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_CLIENT_ID string = identity.outputs.clientId
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output STATE_TABLE_ENDPOINT string = 'https://${storage.outputs.name}.table.${environment().suffixes.storage}'
output APPLICATIONINSIGHTS_NAME string = appInsights.outputs.name
