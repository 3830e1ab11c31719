"""The bundled, deterministic demo stream that ``leadbot demo`` replays."""

from bot.demo.personas import PERSONAS, DemoLead, Persona
from bot.demo.sample import Sample, generate, sample_stream

__all__ = ["PERSONAS", "DemoLead", "Persona", "Sample", "generate", "sample_stream"]
