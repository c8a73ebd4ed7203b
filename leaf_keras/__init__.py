"""leaf_keras: LEAF, the learnable audio frontend, as Keras 3 layers.

Port of google-research/leaf-audio (Zeghidour et al., "LEAF: A Learnable
Frontend for Audio Classification", ICLR 2021) that runs on the TensorFlow,
JAX and PyTorch backends. `docs/architecture.md` maps the paper's stages to
the modules.
"""

from leaf_keras import band_limited
from leaf_keras import band_plan
from leaf_keras import convolution
from leaf_keras import filterbank
from leaf_keras import frontend
from leaf_keras import impulse_responses
from leaf_keras import initializers
from leaf_keras import leaf_audio_weights
from leaf_keras import mel_frontend
from leaf_keras import melfilters
from leaf_keras import models
from leaf_keras import ops
from leaf_keras import pooling
from leaf_keras import postprocessing
from leaf_keras import stages
from leaf_keras import streaming
from leaf_keras import streaming_classifier
from leaf_keras import transformer
from leaf_keras import utils
from leaf_keras import waveforms
from leaf_keras.band_limited import BandLimitedGaborPooling
from leaf_keras.band_limited import update_band_plans
from leaf_keras.convolution import GaborConstraint
from leaf_keras.convolution import GaborConv1D
from leaf_keras.convolution import NormalizedConv1D
from leaf_keras.convolution import SincConv1D
from leaf_keras.filterbank import Filterbank
from leaf_keras.frontend import Leaf
from leaf_keras.frontend import SincNet
from leaf_keras.frontend import SincNetPlus
from leaf_keras.frontend import TimeDomainFilterbanks
from leaf_keras.initializers import GaborInit
from leaf_keras.initializers import LowpassInit
from leaf_keras.initializers import PreempInit
from leaf_keras.initializers import SincInit
from leaf_keras.leaf_audio_weights import load_leaf_audio_weights
from leaf_keras.mel_frontend import MelFilterbanks
from leaf_keras.mel_frontend import MelPCEN
from leaf_keras.models import PANN
from leaf_keras.models import AudioClassifier
from leaf_keras.models import ConvBlock
from leaf_keras.models import ConvNet
from leaf_keras.models import EfficientNetB0Encoder
from leaf_keras.models import PANNConvBlock
from leaf_keras.models import PANNWavBlock
from leaf_keras.models import SmallConvNet
from leaf_keras.models import WaveGram
from leaf_keras.ops.fft_correlation import fft_conv1d
from leaf_keras.ops.fft_correlation import overlap_add_conv1d
from leaf_keras.pooling import ChannelWiseLearnablePooling1D
from leaf_keras.pooling import GaussianLowpass
from leaf_keras.pooling import LearnablePooling1D
from leaf_keras.pooling import MaxPooling1D
from leaf_keras.postprocessing import ExponentialMovingAverage
from leaf_keras.postprocessing import InstanceNormalization
from leaf_keras.postprocessing import LogCompression
from leaf_keras.postprocessing import PCENLayer
from leaf_keras.postprocessing import SpecAugment
from leaf_keras.stages import EnergyFloor
from leaf_keras.stages import SquaredModulus
from leaf_keras.streaming_classifier import StreamingClassifier
from leaf_keras.transformer import TransformerEncoder
from leaf_keras.waveforms import WaveformInput

__version__ = "0.1.0"
