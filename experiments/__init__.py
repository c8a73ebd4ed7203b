"""TensorFlow-only experiment code for leaf_keras: input pipelines, training, export."""
