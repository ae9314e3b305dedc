// A minimal token server as LiveKit's documentation shows it.
const express = require('express');
const { AccessToken } = require('livekit-server-sdk');

const API_KEY = process.env.LIVEKIT_API_KEY || 'devkey';
const API_SECRET = process.env.LIVEKIT_API_SECRET || 'voxplane-dev-livekit-secret-0123456789abcdef';
const PORT = parseInt(process.env.PORT || '18282', 10);

const app = express();
app.use(express.json());

app.post('/token', async (req, res) => {
  const { identity, room } = req.body || {};
  if (!identity || !room) {
    return res.status(400).json({ error: 'Missing identity or room', code: 'INVALID_REQUEST' });
  }
  const at = new AccessToken(API_KEY, API_SECRET, { identity, ttl: '1h' });
  at.addGrant({ roomJoin: true, room, canPublish: true, canSubscribe: true, canPublishData: true });
  res.json({ token: await at.toJwt(), room, wsUrl: 'ws://127.0.0.1:7880' });
});

app.listen(PORT, '127.0.0.1', () => console.log(`node token server on ${PORT}`));
