"""leaf_keras.stages: squared modulus and energy floor."""

import leaf_keras

import layer_test


def test_squared_modulus_layer_contract():
    layer_test.run_layer_test(
        leaf_keras.SquaredModulus,
        input_shape=(2, 50, 8),
        expected_output_shape=(2, 50, 4),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=0,
    )


def test_energy_floor_layer_contract():
    layer_test.run_layer_test(
        leaf_keras.EnergyFloor,
        {"floor": 1e-3},
        input_shape=(2, 50, 4),
        expected_output_shape=(2, 50, 4),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=0,
    )
