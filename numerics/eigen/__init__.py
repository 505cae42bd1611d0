"""The eigen paper (Dou & Principe 2023): torch RNN/LSTM/GRU training with spectrum tracking, fitted spectral initializers and spectrum plots."""
