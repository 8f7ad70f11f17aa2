"""Floor 3, personal data: how long recordings, transcripts, CDRs and logs are kept."""
