"""``leadbot import``: HubSpot and Salesforce CSV exports as leads and labels."""
