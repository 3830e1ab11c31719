"""CRM connectors: scores out to HubSpot and Salesforce, outcomes back as labels."""
