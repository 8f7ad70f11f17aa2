"""Floor 3, speech recognition with vosk: one home for the IVR's transcripts and the
survey's spoken answers (the prompts' text-to-speech lives in `prompts/`)."""
