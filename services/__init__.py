"""The lead and referral lifecycle services."""
